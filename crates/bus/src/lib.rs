//! stratus-bus
