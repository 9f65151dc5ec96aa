//! Threshold ECDSA for EVM accounts on Tacit.
