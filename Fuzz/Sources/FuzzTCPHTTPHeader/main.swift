// libFuzzer drives the process: see FuzzerDriver and LLVMFuzzerTestOneInput in FuzzTCPHTTPHeader.swift.
import FuzzSupport

FuzzerDriver.run { data, size in fuzz(data, size) }
