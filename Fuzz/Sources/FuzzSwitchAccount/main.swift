// libFuzzer drives the process: see FuzzerDriver and LLVMFuzzerTestOneInput in FuzzSwitchAccount.swift.
import FuzzSupport

FuzzerDriver.run { data, size in fuzz(data, size) }
