"""Real-client conformance suite: containerd (ctr) and podman driving ociruntime, and the runtime-tools runner."""
