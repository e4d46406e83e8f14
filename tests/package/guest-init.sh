#!/bin/sh
# guest-init.sh: PID 1 (a shell) after the lab initramfs's switch_root (tests/hwlab/mkinitrd.sh runs
# /lab/guest-init.sh). It readies the overlay root for a systemd boot and execs systemd as PID 1 with
# pkgtest.target as the default target: sysinit and basic (journald, udev with coldplug, tmpfiles) and
# the test service, but not multi-user.target, so the host's enabled services (mosquitto, nginx,
# getty, ...) stay off. The job (/lab/job.env, written by TestPackageSystemd) is a Go test binary run
# as root in its package directory; guest-done.sh records its status and powers off.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# systemd expands ${VAR} in arguments, not in the executable's path
dir=$(sed -n 's/^LAB_DIR=//p' /lab/job.env); bin=$(sed -n 's/^LAB_BIN=//p' /lab/job.env)
mkdir -p /etc/systemd/system /etc/tmpfiles.d
# tmp.conf's "D /tmp" would empty the host's /tmp in the overlay: slow over 9p, and a repository
# checked out under /tmp (CI) would vanish
ln -sf /dev/null /etc/tmpfiles.d/tmp.conf
echo pkgtest > /etc/hostname
# this machine's image comes from a Docker base whose policy-rc.d (exit 101) forbids starting services
# from maintainer scripts; a Pi has none, and the postinst's start is part of what is tested
rm -f /usr/sbin/policy-rc.d
cat > /etc/systemd/system/pkgtest.target <<UNIT
[Unit]
Description=makercast package test
Wants=pkgtest.service
AllowIsolate=yes
UNIT
cat > /etc/systemd/system/pkgtest.service <<UNIT
[Unit]
Description=makercast package test (guest side)
After=basic.target

[Service]
Type=simple
EnvironmentFile=/lab/job.env
Environment=MAKERCAST_PKGTEST_GUEST=1 LAB_OUT=/lab/out HOME=/root
WorkingDirectory=$dir
ExecStart=$bin -test.v -test.run \${LAB_RUN} -test.timeout \${LAB_TIMEOUT}
ExecStopPost=/bin/sh /lab/guest-done.sh
StandardOutput=file:/lab/out/log
StandardError=inherit
UNIT
exec /lib/systemd/systemd --unit=pkgtest.target
