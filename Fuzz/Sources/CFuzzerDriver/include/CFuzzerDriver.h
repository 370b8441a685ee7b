// libFuzzer's driver entry (compiler-rt FuzzerInterface.h / FuzzerDriver.cpp), declared here because
// Swift cannot import it from the runtime archive. SwiftPM links every executable with its own
// `main` (it renames the entry point so that tests can link executables), which keeps libFuzzer's
// `main` out; each fuzz target's main.swift therefore hands control to this function instead.
#ifndef VMESSD_CFUZZERDRIVER_H
#define VMESSD_CFUZZERDRIVER_H
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*UserCb)(const uint8_t *Data, size_t Size));

#endif
