import Foundation
import SigilCommands

let code = await Sigil.run(arguments: Array(CommandLine.arguments.dropFirst()))
exit(code)
