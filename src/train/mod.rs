//! Training: the step graph (`step`), the update rules written in IR ops (`optimizer`), and the
//! loop that feeds it batches (`run`), with validation, metrics and checkpoints.

pub mod optimizer;
pub mod plot;
pub mod run;
pub mod step;
