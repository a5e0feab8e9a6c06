//! The control API types and the flow text syntax (arrives with the control-plane issue).
