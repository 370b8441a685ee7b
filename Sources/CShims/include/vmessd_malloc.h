#ifndef VMESSD_MALLOC_H
#define VMESSD_MALLOC_H
/// Keeps glibc from trimming the heap top and from serving mid-size buffers with mmap, so that relay
/// buffers freed and reallocated at a high rate reuse warm pages (no page faults per read).
void vmessd_tune_malloc(void);
/// Gives every whole free page of every malloc arena back to the kernel (malloc_trim(0): madvise
/// inside the arenas, not only at their tops, whatever M_TRIM_THRESHOLD says). Returns 1 when
/// memory was released.
int vmessd_release_free_memory(void);
#endif
