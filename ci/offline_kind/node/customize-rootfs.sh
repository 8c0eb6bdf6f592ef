#!/bin/bash
# Runs inside the node rootfs (chroot) after kind's images/base/files are in place.
# It mirrors the RUN steps of kind 0.27's images/base/Dockerfile; Debian's
# containerd, runc and CNI plugins stand in for the ones kind builds itself.
set -euo pipefail

chmod 755 /kind/bin

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

# kind's units and configs expect its own builds in /usr/local/{bin,sbin}.
for tool in containerd ctr containerd-shim-runc-v2; do
  ln -sf "/usr/bin/$tool" "/usr/local/bin/$tool"
done
ln -sf /usr/sbin/runc /usr/local/sbin/runc

# kind's base image downloads CNI plugins into /opt/cni/bin, where
# containerd's CRI looks; Debian installs them in /usr/lib/cni.
mkdir -p /opt/cni/bin
for plugin in /usr/lib/cni/*; do
  ln -sf "$plugin" /opt/cni/bin/
done

systemctl enable kubelet.service
systemctl enable containerd.service
systemctl enable undo-mount-hacks.service
systemctl mask systemd-binfmt.service

mkdir -p /etc/kubernetes/manifests

ctr oci spec \
  | jq '.hooks.createContainer[.hooks.createContainer| length] |= . + {"path": "/kind/bin/mount-product-files.sh"}' \
  | jq 'del(.process.rlimits)' \
  > /etc/containerd/cri-base.json
containerd --version
runc --version
