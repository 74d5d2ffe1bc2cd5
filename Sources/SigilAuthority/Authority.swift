import SigilStore
