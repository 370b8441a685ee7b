#ifndef VMESSD_CSYSTEMD_SHIM_H
#define VMESSD_CSYSTEMD_SHIM_H
#include <systemd/sd-daemon.h>
#endif
