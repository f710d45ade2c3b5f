import SetuGit
import SetuManifest
import ArgumentParser
import Crypto
print("x")
