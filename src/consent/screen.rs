//! The consent screen (being built).

use crate::store::Store;

use super::ConsentError;

pub fn run(_store: &mut Store, _now_ns: i64) -> Result<String, ConsentError> {
    Err(ConsentError::NothingActive("show a screen for"))
}
