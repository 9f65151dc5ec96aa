//! QUIC transport (filled by the QUIC work).
