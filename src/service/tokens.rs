//! See the [module list](super).
