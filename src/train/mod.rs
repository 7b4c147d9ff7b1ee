//! Training: the step graph (`step`), the update rules written in IR ops (`optimizer`), and the
//! loop that feeds it batches (`run`), with validation, metrics and checkpoints; `distributed`
//! runs that loop data-parallel over several processes (MPI); the Laplace posterior
//! (`posterior`): precisions stored at the end of training, and what reads them.

pub mod distributed;
pub mod optimizer;
pub mod plot;
pub mod posterior;
pub mod run;
pub mod step;
