#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| magicnet_fuzz::harness::transfer(data));
