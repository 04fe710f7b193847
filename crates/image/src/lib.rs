//! stratus-image
