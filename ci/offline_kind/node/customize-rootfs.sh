#!/bin/bash
# Runs inside the node rootfs (chroot) after kind's images/base/files and the node stack
# (containerd, runc, crictl, CNI plugins, built from Go modules) are in place. It mirrors the
# RUN steps of kind's images/base/Dockerfile.
set -euo pipefail

chmod 755 /kind /kind/bin

# systemd clean-up, as kind's Dockerfile does it.
find /lib/systemd/system/sysinit.target.wants/ -name "systemd-tmpfiles-setup.service" -delete
rm -f /lib/systemd/system/multi-user.target.wants/*
rm -f /etc/systemd/system/*.wants/*
rm -f /lib/systemd/system/local-fs.target.wants/*
rm -f /lib/systemd/system/sockets.target.wants/*udev*
rm -f /lib/systemd/system/sockets.target.wants/*initctl*
rm -f /lib/systemd/system/basic.target.wants/*
echo "ReadKMsg=no" >> /etc/systemd/journald.conf
ln -sf /lib/systemd/systemd /sbin/init

systemctl enable kubelet.service
systemctl enable containerd.service
systemctl enable undo-mount-hacks.service
systemctl mask systemd-binfmt.service

mkdir -p /etc/kubernetes/manifests

ctr oci spec \
  | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
  | jq 'del(.process.rlimits)' \
  > /etc/containerd/cri-base.json
# runc links libseccomp and libc through cgo, built on this machine: it must run here.
containerd --version
runc --version
