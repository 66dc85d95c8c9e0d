#!/usr/bin/env bash
# Sets up a fresh Debian machine for herd's tests and demo: OpenSSH server, iproute2, nftables, rsync, tcsh, node packages.
set -euo pipefail
cd "$(dirname "$0")/.."
need=()
command -v sshd >/dev/null 2>&1 || [ -x /usr/sbin/sshd ] || need+=(openssh-server)
command -v ssh >/dev/null 2>&1 || need+=(openssh-client)
command -v ip >/dev/null 2>&1 || need+=(iproute2)
command -v tc >/dev/null 2>&1 || need+=(iproute2)
command -v unshare >/dev/null 2>&1 || need+=(util-linux)
command -v tcpdump >/dev/null 2>&1 || need+=(tcpdump)
command -v nft >/dev/null 2>&1 || [ -x /usr/sbin/nft ] || need+=(nftables)
# gitlab-ci-local (the component's test) copies the project with rsync and reads it with git.
command -v rsync >/dev/null 2>&1 || need+=(rsync)
command -v git >/dev/null 2>&1 || need+=(git)
# A test login's shell: the agent must start under csh/tcsh too.
command -v tcsh >/dev/null 2>&1 || need+=(tcsh)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" != 0 ]; then echo "setup: need root to install ${need[*]} (run with sudo)" >&2; exit 2; fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
mkdir -p /run/sshd 2>/dev/null || true
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
