//! The `identity.xml` loader (host/src/config/identity.rs over config/xml.rs): any text either
//! parses or is an error naming the file.
//!
//! Input: the file's text (not UTF-8 is skipped: `Identity::load` refuses it as an I/O error).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::path::Path;
use tollgate_host::config::Identity;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let file = Path::new("conf/identity.xml");
    match Identity::parse(text, file) {
        Ok(identity) => {
            let _ = identity.listener("jwks-validator");
            let _ = identity.cache("PrivateKeyJWT");
        }
        Err(e) => {
            let message = e.to_string();
            assert!(message.starts_with("conf/identity.xml: "), "{message}");
        }
    }
});
