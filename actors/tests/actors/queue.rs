//! Tests of the queue stage.
