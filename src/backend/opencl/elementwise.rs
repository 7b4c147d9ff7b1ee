//! Stub (ocl-special branch): the lead's module lands here.
