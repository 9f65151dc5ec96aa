//! Aggregate risk scoring on Tacit.
