#include "vmessd_malloc.h"
#include <malloc.h>

void vmessd_tune_malloc(void) {
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 1 << 20);
}

int vmessd_release_free_memory(void) {
    return malloc_trim(0);
}
