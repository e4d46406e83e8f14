#!/bin/sh
# guest-done.sh: pkgtest.service's ExecStopPost. Records the job's exit status (systemd passes
# EXIT_STATUS; a signal is written as its name), the whole journal and the kernel log in /lab/out,
# then powers off at once (sysrq; the lab dir is synced first).
echo "${EXIT_STATUS:-255}" > /lab/out/rc
journalctl --no-pager -o short-monotonic > /lab/out/journal 2>&1
dmesg > /lab/out/dmesg 2>&1
sync
echo o > /proc/sysrq-trigger
