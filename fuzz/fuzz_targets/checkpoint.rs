//! The checkpoint loader on any bytes: an error naming the file, or a checkpoint that saves and
//! loads back to itself; never a panic, never an allocation the input's size does not justify.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spatial_gpu::checkpoint;
use std::path::Path;

fuzz_target!(|data: &[u8]| {
    let file = Path::new("fuzz-input");
    match checkpoint::from_bytes(data, file) {
        Err(e) => assert!(e.to_string().starts_with("fuzz-input: ")),
        Ok(ck) => {
            let bytes = checkpoint::to_bytes(&ck.model, &ck.train, &ck.state, ck.progress);
            let again = checkpoint::from_bytes(&bytes, file).expect("a saved checkpoint loads");
            assert_eq!(again.state.step, ck.state.step);
            assert_eq!(again.progress, ck.progress);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&again.state.params.data), bits(&ck.state.params.data));
        }
    }
});
