//! "Did you mean …?" suggestions for misspelled names: the runtime's one closest-name helper,
//! shared with the CSV reader's suggestions for missing columns.

pub use circ_runtime::files::suggest::closest;
