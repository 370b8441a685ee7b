// libFuzzer drives the process: see FuzzerDriver and LLVMFuzzerTestOneInput in FuzzProxyProtocol.swift.
import FuzzSupport

FuzzerDriver.run { data, size in fuzz(data, size) }
