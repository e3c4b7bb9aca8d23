# Sourced by the scripts: installs the Debian 12 packages a step needs when they are missing.
# hc_install_deps GROUP... with groups: build, test, bench.
# kubectl (>= 1.29, with kustomize v5) is not among them: Debian 12's kubernetes-client is 1.20;
# tests/integration/test_k8s.py fails with a clear line where it is missing.

hc_pkgs_build=(cmake make gcc pkg-config libuv1-dev libh2o-dev libprotobuf-c-dev
    protobuf-c-compiler libssl-dev libsodium-dev libcurl4-openssl-dev)
hc_pkgs_test=(python3 python3-yaml python3-redis curl nghttp2-client openssl procps redis-tools
    iproute2 nftables util-linux)
hc_pkgs_bench=(nghttp2-client redis-server redis-tools util-linux)

hc_install_deps() {
    local want=() missing=() p g
    for g in "$@"; do
        case "$g" in
        build) want+=("${hc_pkgs_build[@]}") ;;
        test) want+=("${hc_pkgs_test[@]}") ;;
        bench) want+=("${hc_pkgs_bench[@]}") ;;
        esac
    done
    for p in "${want[@]}"; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing+=("$p")
        fi
    done
    # node and npm for the offline schema check of k8s/ (tests/k8s): Debian's nodejs and npm
    # when the commands are missing; a node that came another way (with npm bundled) is kept
    if [[ " $* " == *" test "* ]]; then
        command -v node >/dev/null 2>&1 || command -v nodejs >/dev/null 2>&1 || missing+=(nodejs)
        command -v npm >/dev/null 2>&1 || missing+=(npm)
    fi
    if [ ${#missing[@]} -eq 0 ]; then
        return 0
    fi
    if [ "$(id -u)" != 0 ]; then
        echo "missing packages: ${missing[*]} (run as root, or: apt-get install ${missing[*]})" >&2
        return 1
    fi
    echo "installing: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}
