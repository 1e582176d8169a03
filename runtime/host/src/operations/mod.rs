//! Operator workflows over the streams: reading and redriving dead letters, reading shadow
//! reports. They read what the pipeline wrote and, for redrive, drive the pipeline again.

pub mod dead_letters;
pub mod redrive;
pub mod shadow;
