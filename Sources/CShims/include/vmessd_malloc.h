#ifndef VMESSD_MALLOC_H
#define VMESSD_MALLOC_H
/// Keeps glibc from trimming the heap top and from serving mid-size buffers with mmap, so that relay
/// buffers freed and reallocated at a high rate reuse warm pages (no page faults per read).
void vmessd_tune_malloc(void);
#endif
