// libFuzzer drives the process: see FuzzerDriver and LLVMFuzzerTestOneInput in FuzzKCP.swift.
import FuzzSupport

FuzzerDriver.run { data, size in fuzz(data, size) }
