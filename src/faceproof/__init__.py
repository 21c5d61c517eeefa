"""faceproof: face authentication for identity proofing. Keeps no biometric data."""
