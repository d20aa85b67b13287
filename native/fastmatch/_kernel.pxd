# What other native modules call of fastmatch._kernel (native/_kernel.pyx) directly, in C. Its
# path names the module that Cython imports it from; native/ is the include path.
from libc.stdint cimport int64_t

cdef tuple request_top_k(object targets, object problem, int64_t host, int64_t twin, int64_t k)
