// libFuzzer drives the process: see FuzzerDriver and LLVMFuzzerTestOneInput in FuzzAEADHeader.swift.
import FuzzSupport

FuzzerDriver.run { data, size in fuzz(data, size) }
