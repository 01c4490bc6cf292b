//! The allocator of every rescue process: mimalloc rather than the system's.
//!
//! A gRPC request is allocated on one thread and freed on another (the connection's task,
//! the request's task and the client's run wherever the runtime puts them), and a scored
//! snapshot is a few dozen strings. glibc's malloc returns such memory to the arena of the
//! thread that allocated it, under that arena's lock: under `cargo bench --bench scoring` the
//! process made 3.6 `futex` calls per inline score, nearly all on those locks, and spent 13
//! of the request's 87 µs of CPU in malloc and free. mimalloc frees across threads without a
//! lock (0.15 `futex` calls per request). It is set here, in the library, so the server
//! binary and the benchmarks that host the server in their own process allocate alike.
//!
//! Built without transparent huge pages (`no_thp`): mimalloc otherwise advises the kernel to
//! back its arenas with 2 MB pages, and each one touched after a purge is zeroed whole — under
//! `cargo bench --bench ingest` that zeroing was 30% of the process's CPU.

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
