//! `dispatcher::weight::allocation` is exact under jemalloc, the soak's allocator:
//! the bytes this thread's jemalloc counter grows by for one allocation of each
//! size are the size class the dispatcher charges under `Weighing::Occupancy`.

use tikv_jemalloc_ctl::thread::allocatedp;

// Links the soak library, whose global allocator is jemalloc.
use soak as _;

#[test]
fn the_size_classes_are_jemallocs() {
    let counter = allocatedp::mib()
        .expect("thread.allocatedp")
        .read()
        .expect("read");
    let sizes = (1..=4096usize)
        .chain((4097..=70_000).step_by(97))
        .chain((70_000..=(4 << 20)).step_by(4093));
    for n in sizes {
        let before = counter.get();
        let held: Vec<u8> = std::hint::black_box(Vec::with_capacity(n));
        let grew = counter.get() - before;
        drop(held);
        assert_eq!(
            grew,
            dispatcher::weight::allocation(n) as u64,
            "jemalloc set aside {grew} B for {n} B"
        );
    }
}
