// Made with OpenSSL 3.0.19 on the development machine; test data, not secrets.
//   sec1:         openssl ecparam -name prime256v1 -genkey        (EC PARAMETERS + EC PRIVATE KEY)
//   pkcs1:        openssl genrsa -traditional 2048                 (RSA PRIVATE KEY)
//   p384Pbkdf2:   openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA256, passphrase "fixture-pass"
//   p384Scrypt:   openssl pkcs8 -topk8 -scrypt, passphrase "fixture-pass"
//   weakCSR:      openssl req -new -sha1 with a 1024-bit RSA key, CN=old.example.com
//   cpCSR:        openssl req -new with the sec1 key, C=US, CN=www.example.com, SAN, challengePassword "hunter2"
enum Fixtures {
    static let passphrase = "fixture-pass"
    /// SHA-256 of the DER SubjectPublicKeyInfo, from `openssl pkey -pubout -outform DER | sha256sum`.
    static let sec1Fingerprint = "716a69d8c12c6ef142bd5cbed35b0e7aa6f07ff12c416422d09370fafeb39ea0"
    static let pkcs1Fingerprint = "9685ef22da87477b37f80b75fd46dea26a306e803e95d7c6024a0fc155fd463c"
    static let p384Fingerprint = "76625cc6fde7154dffdc5f20620750e09f3de498eed1fa16aa66eebcf8581697"
    static let sec1 = """
-----BEGIN EC PARAMETERS-----
BggqhkjOPQMBBw==
-----END EC PARAMETERS-----
-----BEGIN EC PRIVATE KEY-----
MHcCAQEEIEqs9YZAIYPIR3t8R743Fp4AtQYRQwz/CmHD9vZbIx0goAoGCCqGSM49
AwEHoUQDQgAEsXcmALI2zJXxXOVAozKtMq+aCXkH7BDKy5QbTRhKuiQMdSmDt+85
kxbtXsOyeuKR9lUf3YRnqJfgct8nLToOJQ==
-----END EC PRIVATE KEY-----
"""
    static let pkcs1 = """
-----BEGIN RSA PRIVATE KEY-----
MIIEpQIBAAKCAQEAub0RExUrBGes5InpbtmWl0s7CMJmgYVyHHpm08zuY29k+6O1
uh9GC6eJG19PdAJUJhF+WtnqXnucFvzUGxgsRzmnITctE8NRkZ6eKXC/QBEu1zKt
+rbruD7WhjFEUu+h8etmvPbNZRCu0ZYHxK0DhtaLMO2IzcLupvGwOjnj/CqUMXji
5hH6tgcdWJ8uzpZzQBbXaA2PUG8jlSriqqddt2DBoBTkdT3ehO124iDuO0DXtJBW
eei54i7As/S7QLrAfARpUL1YNeU4sj+9QP9IhNdbZT+9lx2UJMDRh+aBj6RnQPlF
l2TFenU4PYfUElGeXXJ7mxh02cYevK78yZzQcQIDAQABAoIBAAqMD2+neJFf98Pk
hvJp/bCqr3gAXgTF2KSAWN13GiRgW3okojmm8/nOci0xPNhIF5Iv1R6AmFv0Jfly
MvM07LLAtdpfgTpJkZS0zqNoyRtwvlmvAY0mnP0R6GmnW4tgGzCbHvLlCuXNzDeP
jvJepsAd57qICogwpQ+q0siDqAwWIA/VrmikiPa6U8G6cULIAsAIMtv24anbcyeq
M0OzGPGvod/WmYhiltmsSwiQ/NUcG8Zoc+vMWxf348cSccCX2tROWa8ulbqVthVN
R8pnmmN86XaIHR9GK0fG4hYWNY3wR0TM7ETXMTLD8Y1kELeY7Cp71a7UdG9GN0Ta
tGhJEpcCgYEA6dfJX90blt36AXSLBbfKFe/JZd7ShdBmWlx7TZ9FIdFU5PDHrnVW
rwaXo/k2rrr2r+EzMjykt5YoXBrUkbDGooTV3LpyEJcafGaEAAWXKzS6s+cNxI07
2IonmkvSANFIPSySY0q59XouSHfpUd7qfSw9vZODopdMxowI+bu98PcCgYEAy1Zv
jigX87L0I7HZRwgPBPNfGHFGe1SNNHTRXNmxXcrVuHgZjxVA+VaQqLeXbrfo9scR
ucU1gHgNJty6/DFt8tLQciKj9J02wgEj+7bs7UHaEcbMFcQTJ4D/YKXkcZmI5cz8
OJy02mQmTvzq9e2JnAWyVyTF4mjQU2eCiHAI19cCgYEA0R+CXnHNR4lyGDUSUuW/
GwkbEjhICxWJQ0wrlQpXd9vN0QQnfzQ+dj4uBJ1NsstO65E5CLdFE019AImaCkSO
Dy8+VqyCb6XCMPg5Gg/l1eTNBzAdluY7W/aJXipqPwLqWJLww01Dqm0+0N4z0VzK
VXDoMg6nDRPDvFflevjT75cCgYEAvPjwphH26KJ4qK/BuXTw2G4CA+pKUZYrwQOM
C5m5b+xxIYZkYoijINbljBdLojdDSA2MGLUB2wo3VtWu5XBeuVxZIqm07EIrwLNk
qKvBl2Iq83ho9RWLo5wMOtsR6s2A3+jYwxhIL+sBe0ksaDBBQoI80yY2zgsRCWJa
esh8P3MCgYEAqCwHNZobBVPz1TAl1Lpe/Odp4THn9rV/3h/mfBIlK/eNdNTOfPQM
SXASxnsdvdmE9vToxjlb5Mqc55chFhdUxGBnZaSjVbxBqagqZ7mx4BxQ6e48Gy0C
wq662Q1FRVkWaOVoPFtNARBdpsmfu1NUtw5ovwmKxEXPzPn9Q1b5wuY=
-----END RSA PRIVATE KEY-----
"""
    static let p384Pbkdf2 = """
-----BEGIN ENCRYPTED PRIVATE KEY-----
MIIBHDBXBgkqhkiG9w0BBQ0wSjApBgkqhkiG9w0BBQwwHAQIv/SInLcHc8ICAggA
MAwGCCqGSIb3DQIJBQAwHQYJYIZIAWUDBAEqBBDRg+w41VqVXhEQnBSItzc+BIHA
LMdr1wCSRJxd7vqsajlrchEY6DZ7YFbE6rQko4nYzF6VU6btGr7QlzVVVzZtm2ky
TFwiXrw7V3jNi5oeQiURbFekV993x5CdMYXI1JWRO4wYxhic/I8QRcNNBGeGUI1f
ueskJxtcl8F0fOzqf4L+uUxplIvNr44GfARSAJg83e23jEqwsI7qOhSU53iMxFo9
tOy9TXD6GTpwVwWwXkKKq1YUv2Ruisxydd00ljdQibOF+QfwDgKTA1DiTUkWeko8
-----END ENCRYPTED PRIVATE KEY-----
"""
    static let p384Scrypt = """
-----BEGIN ENCRYPTED PRIVATE KEY-----
MIIBFDBPBgkqhkiG9w0BBQ0wQjAhBgkrBgEEAdpHBAswFAQIy8Ym4g2tN+oCAkAA
AgEIAgEBMB0GCWCGSAFlAwQBKgQQSmHgjolTRBeE+vI/KLqQhgSBwKsZOMBE4ecd
eo0KSu3sDjbHnyoVyVuUIc9uqFE1qBokxHhf86YU8jLBuVWxNtqbaPTxcECd9ETN
UnDQedRTvwzDtiYGJt2XP4ZfR8n9NC9HJRXYrUUlj75PC9J5pqINrHfDSGj0kb68
ixN3z4CITGEVQv7Q7hMs5wlbd573E+RovwHx8mOMmCi6C4+hqUd3YkG8NFZjx13i
RW+FtpOfTWuoB7jIHqbJCmBPYV6VaHg0jLPuq/bZF62RlAI/cc0g9A==
-----END ENCRYPTED PRIVATE KEY-----
"""
    static let weakCSR = """
-----BEGIN CERTIFICATE REQUEST-----
MIIBWTCBwwIBADAaMRgwFgYDVQQDDA9vbGQuZXhhbXBsZS5jb20wgZ8wDQYJKoZI
hvcNAQEBBQADgY0AMIGJAoGBAM+uF0VkJJrbhIiszKid5XdVVfTfznqMeUSBLLUc
mnWl/tYlpJHzm9SgIaLubma1ZJIsDSW8XpAkE4wLY6i6A9VFHj/CoIhyfpg9D40e
Qce8xs71X5DaDgsvLii4wXhQMIsMkwXs4UB/A1MKJF5Vl+O859BV4ZaAwEHB2MEC
QQpdAgMBAAGgADANBgkqhkiG9w0BAQUFAAOBgQCXzSHUVJ6dHRae8Aj3Kndn+wbd
xrjTXTJcjIk6uM+mKar58Pf4TnzFDw+kaXnMwkLhtOH8RE7bVxLQIJ/L61OX89o1
GGpYu2/I8UPhxbW1VvrIt+lqC12ujVGTj4pTN+z2DS1OdIPAtWf9zWJ9FlFnJUdn
z25PJ6ZUzz/04SS/8A==
-----END CERTIFICATE REQUEST-----
"""
    static let cpCSR = """
-----BEGIN CERTIFICATE REQUEST-----
MIIBJzCBzgIBADAnMQswCQYDVQQGEwJVUzEYMBYGA1UEAwwPd3d3LmV4YW1wbGUu
Y29tMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEsXcmALI2zJXxXOVAozKtMq+a
CXkH7BDKy5QbTRhKuiQMdSmDt+85kxbtXsOyeuKR9lUf3YRnqJfgct8nLToOJaBF
MBYGCSqGSIb3DQEJBzEJDAdodW50ZXIyMCsGCSqGSIb3DQEJDjEeMBwwGgYDVR0R
BBMwEYIPd3d3LmV4YW1wbGUuY29tMAoGCCqGSM49BAMCA0gAMEUCIFiOpM+jLHmo
r9V1wD8bsXZKJLp2Oqv05S+fKus9WmwzAiEAwZZENx12gmbkvxiqpS0kRy7mkiOb
H2h3owM3RjfBqxU=
-----END CERTIFICATE REQUEST-----
"""
}
