"""The local control plane: etcd, kube-apiserver, kube-controller-manager and KServe's controller
manager, built from their Go modules (tools/platform/) and run as local processes.
See docs/local-control-plane.md."""
