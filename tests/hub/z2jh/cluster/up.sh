#!/usr/bin/env bash
# Brings up a one-node Kubernetes cluster on this machine, step by step,
# and says after each step whether it worked: etcd, kube-apiserver,
# kube-controller-manager, kube-scheduler (all from the pinned module,
# ../kube), containerd (Debian's) with its own root, state and socket so
# that Docker's stays untouched, the CNI plugins (Debian's
# containernetworking-plugins: bridge, host-local, portmap, firewall,
# loopback), the kubelet, kube-proxy (iptables) and CoreDNS (../coredns).
# The last steps run a pod from a local image and reach it by its IP, by
# its Service's cluster IP and by its DNS name.
#
#   PAUSE_IMAGE=… COREDNS_IMAGE=… PROBE_IMAGE=… [IMAGES=…] up.sh BIN_DIR DIR
#
# BIN_DIR holds the binaries (etcd, kube-*, kubelet, kubectl), DIR gets the
# cluster's files. The images are Docker's, copied into containerd: the
# sandbox (pause), CoreDNS, one with python3 for the probe pod, and any
# others the cluster is to run (IMAGES), all with pull policy Never.
# ../cluster_test.go builds them all and runs this.
#
# It leaves the cluster running and writes DIR/kubeconfig and DIR/down.sh,
# which stops it and removes what it put on the host (the bridge, iptables
# rules, mounts). Needs root, cgroups and iptables, as a kubelet does.
set -uo pipefail

BIN=${1:?usage: up.sh BIN_DIR DIR}
D=${2:?usage: up.sh BIN_DIR DIR}
NODE=${NODE_NAME:-z2jh-node}
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
DNS_IP=10.96.0.10
PAUSE_IMAGE=${PAUSE_IMAGE:?the sandbox image, a Docker image}
COREDNS_IMAGE=${COREDNS_IMAGE:?CoreDNS, a Docker image}
PROBE_IMAGE=${PROBE_IMAGE:?an image with python3, a Docker image}
NODE_IP=$(ip -4 route get 1.1.1.1 2>/dev/null | sed -nE 's/.* src ([0-9.]+).*/\1/p')
[ -n "$NODE_IP" ] || NODE_IP=$(hostname -I | awk '{print $1}')

mkdir -p "$D"/{pki,logs,containerd,cni/net.d,cni/ipam,kubelet,pv}
: >"$D/pids"
start=$(date +%s)

step() { printf '%s step %s ... ' "$(date -u +%T)" "$*"; }
ok() { echo "ok ($(($(date +%s) - start)) s)"; }
fail() {
	echo "FAILED: $*"
	exit 1
}
# bg NAME CMD...: starts a server, its output in DIR/logs/NAME.log.
bg() {
	local name=$1
	shift
	setsid "$@" >"$D/logs/$name.log" 2>&1 &
	echo "$! $name" >>"$D/pids"
}
# wait_for SECONDS WHAT CMD...: polls CMD until it succeeds.
wait_for() {
	local deadline=$(($(date +%s) + $1)) what=$2
	shift 2
	until "$@" >/dev/null 2>&1; do
		[ "$(date +%s)" -lt "$deadline" ] || return 1
		sleep 0.5
	done
}
kc() { "$BIN/kubectl" --kubeconfig "$D/kubeconfig" "$@"; }
logtail() { tail -n "${2:-15}" "$D/logs/$1.log" | sed 's/^/    | /'; }

# One cluster at a time on a machine (its ports, bridge and iptables
# chains are fixed): one that an interrupted run left is stopped first.
LAST=/run/z2jh-test-cluster
if [ -f "$LAST" ] && [ -f "$(cat "$LAST")/down.sh" ]; then
	step "0 stopping the cluster left in $(cat "$LAST")"
	bash "$(cat "$LAST")/down.sh"
	ok
fi

cat >"$D/down.sh" <<EOF
#!/usr/bin/env bash
# Stops the cluster that up.sh started in $D and undoes its changes to the host.
# The pods first, so that the kubelet tears down their networks.
"$BIN/kubectl" --kubeconfig "$D/kubeconfig" delete deployments,statefulsets,daemonsets,replicasets,jobs,pods \
	--all --all-namespaces --grace-period=1 --wait --timeout=60s >/dev/null 2>&1
while read -r pid name; do kill -- -\$pid 2>/dev/null; done <"$D/pids"
for _ in \$(seq 20); do
	alive=
	while read -r pid name; do kill -0 -- -\$pid 2>/dev/null && alive=\$name; done <"$D/pids"
	[ -n "\$alive" ] || break
	sleep 0.5
done
while read -r pid name; do kill -9 -- -\$pid 2>/dev/null; done <"$D/pids"
# What may be left of the pods: the containers' shims (those of this
# containerd only), their processes, cgroups, mounts and network.
for p in \$(pgrep -f "containerd-shim-runc-v2 .*-address $D/containerd/containerd.sock"); do kill -9 \$p; done
find /sys/fs/cgroup/*/kubepods -name cgroup.procs -exec cat {} + 2>/dev/null | xargs -r kill -9 2>/dev/null
find /sys/fs/cgroup/*/kubepods -depth -type d -exec rmdir {} + 2>/dev/null
grep " $D/" /proc/mounts | awk '{print \$2}' | sort -r | xargs -r -n1 umount -l 2>/dev/null
ip link del cni0 2>/dev/null
for n in \$(ls /var/run/netns 2>/dev/null | grep '^cni-'); do [ -n "\$(ip netns pids \$n)" ] || ip netns del \$n; done
# The rules and chains of kube-proxy, the kubelet (KUBE-*) and the CNI
# plugins (CNI-*).
"$BIN/kube-proxy" --cleanup >/dev/null 2>&1
for ipt in iptables ip6tables; do
	for table in filter nat mangle; do
		\$ipt -t \$table -S | grep -E -- '-j (KUBE|CNI)-' | grep -vE '^-A (KUBE|CNI)-' | sed 's/^-A/-D/' |
			while read -r rule; do eval \$ipt -t \$table "\$rule"; done
		for c in \$(\$ipt -t \$table -S | sed -nE 's/^-N ((KUBE|CNI)-.*)/\\1/p'); do \$ipt -t \$table -F \$c; done
		for c in \$(\$ipt -t \$table -S | sed -nE 's/^-N ((KUBE|CNI)-.*)/\\1/p'); do \$ipt -t \$table -X \$c; done
	done 2>/dev/null
done
[ "\$(cat $LAST 2>/dev/null)" != "$D" ] || rm -f $LAST
exit 0
EOF
chmod +x "$D/down.sh"
echo "$D" >"$LAST"

step "1 certificates and tokens"
(
	cd "$D/pki" &&
		openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 -subj /CN=z2jh-test-ca \
			-keyout ca.key -out ca.crt &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=kube-apiserver \
			-keyout apiserver.key -out apiserver.csr &&
		printf 'subjectAltName=IP:127.0.0.1,IP:%s,IP:10.96.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local\nextendedKeyUsage=serverAuth\n' "$NODE_IP" >apiserver.ext &&
		openssl x509 -req -in apiserver.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile apiserver.ext -out apiserver.crt &&
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$NODE" \
			-keyout kubelet.key -out kubelet.csr &&
		printf 'subjectAltName=IP:%s,DNS:%s\nextendedKeyUsage=serverAuth\n' "$NODE_IP" "$NODE" >kubelet.ext &&
		openssl x509 -req -in kubelet.csr -CA ca.crt -CAkey ca.key -CAcreateserial -days 2 -extfile kubelet.ext -out kubelet.crt &&
		openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out sa.key &&
		openssl pkey -in sa.key -pubout -out sa.pub
) >"$D/logs/pki.log" 2>&1 || fail "openssl: $(tail -3 "$D/logs/pki.log")"
TOKEN=$(openssl rand -hex 16)
# One static token of system:masters for every component and the test: the
# cluster lives for one test on one machine.
echo "$TOKEN,admin,admin,system:masters" >"$D/pki/tokens.csv"
cat >"$D/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: z2jh
  cluster: {server: "https://$NODE_IP:6443", certificate-authority: "$D/pki/ca.crt"}
users:
- name: admin
  user: {token: "$TOKEN"}
contexts:
- name: z2jh
  context: {cluster: z2jh, user: admin}
current-context: z2jh
EOF
ok

step "2 etcd"
bg etcd "$BIN/etcd" --name=z2jh --data-dir="$D/etcd" \
	--listen-client-urls=http://127.0.0.1:2379 --advertise-client-urls=http://127.0.0.1:2379 \
	--listen-peer-urls=http://127.0.0.1:2380 --initial-advertise-peer-urls=http://127.0.0.1:2380 \
	--initial-cluster=z2jh=http://127.0.0.1:2380
wait_for 30 etcd curl -sf http://127.0.0.1:2379/health || { logtail etcd; fail "etcd is not healthy"; }
ok

step "3 kube-apiserver"
bg kube-apiserver "$BIN/kube-apiserver" --etcd-servers=http://127.0.0.1:2379 \
	--bind-address=0.0.0.0 --secure-port=6443 --advertise-address="$NODE_IP" \
	--tls-cert-file="$D/pki/apiserver.crt" --tls-private-key-file="$D/pki/apiserver.key" \
	--client-ca-file="$D/pki/ca.crt" --token-auth-file="$D/pki/tokens.csv" \
	--authorization-mode=Node,RBAC --allow-privileged=true \
	--kubelet-preferred-address-types=InternalIP \
	--service-account-issuer=https://kubernetes.default.svc.cluster.local \
	--service-account-key-file="$D/pki/sa.pub" --service-account-signing-key-file="$D/pki/sa.key" \
	--service-cluster-ip-range=$SERVICE_CIDR
wait_for 120 apiserver kc get --raw /readyz || { logtail kube-apiserver; fail "kube-apiserver is not ready"; }
ok

step "4 kube-controller-manager and kube-scheduler"
bg kube-controller-manager "$BIN/kube-controller-manager" --kubeconfig="$D/kubeconfig" \
	--authentication-kubeconfig="$D/kubeconfig" --authorization-kubeconfig="$D/kubeconfig" \
	--bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
	--service-account-private-key-file="$D/pki/sa.key" --root-ca-file="$D/pki/ca.crt" \
	--service-cluster-ip-range=$SERVICE_CIDR
bg kube-scheduler "$BIN/kube-scheduler" --kubeconfig="$D/kubeconfig" \
	--authentication-kubeconfig="$D/kubeconfig" --authorization-kubeconfig="$D/kubeconfig" \
	--bind-address=127.0.0.1 --leader-elect=false
wait_for 60 controller-manager curl -skf https://127.0.0.1:10257/healthz || { logtail kube-controller-manager; fail "kube-controller-manager is not healthy"; }
wait_for 60 scheduler curl -skf https://127.0.0.1:10259/healthz || { logtail kube-scheduler; fail "kube-scheduler is not healthy"; }
# The namespace's service account appears once the controller runs.
wait_for 60 serviceaccount kc -n default get serviceaccount default || { logtail kube-controller-manager; fail "no default service account"; }
ok

step "5 containerd $(containerd --version | awk '{print $3}') with its own root and socket"
SOCK=$D/containerd/containerd.sock
cat >"$D/containerd/config.toml" <<EOF
version = 2
root = "$D/containerd/root"
state = "$D/containerd/state"
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs"]
[grpc]
  address = "$SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Without CAP_SYS_RESOURCE (as in this sandbox) no process may lower its
  # oom_score_adj, and the kubelet asks -998 for every pod's sandbox: keep
  # each at least at containerd's own.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$D/cni/net.d"
EOF
cat >"$D/cni/net.d/10-z2jh.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "z2jh",
  "plugins": [
    {"type": "bridge", "bridge": "cni0", "isGateway": true, "ipMasq": true, "hairpinMode": true,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}], "dataDir": "$D/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "firewall", "backend": "iptables"}
  ]
}
EOF
bg containerd containerd --config "$D/containerd/config.toml"
wait_for 30 containerd ctr -a "$SOCK" version || { logtail containerd; fail "containerd does not answer on $SOCK"; }
ok

IMAGES="$PAUSE_IMAGE $COREDNS_IMAGE $PROBE_IMAGE ${IMAGES:-}"
step "6 images from Docker into containerd: $IMAGES"
# In one archive, so that the layers the images share go across once.
docker save $IMAGES | ctr -a "$SOCK" -n k8s.io images import - >"$D/logs/images.log" 2>&1 ||
	{ logtail images; fail "importing the images"; }
ok

step "7 kubelet"
cat >"$D/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# This machine's cgroups are v1; the kubelet refuses them unless told.
failCgroupV1: false
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$SOCK
address: $NODE_IP
readOnlyPort: 0
tlsCertFile: $D/pki/kubelet.crt
tlsPrivateKeyFile: $D/pki/kubelet.key
authentication:
  anonymous: {enabled: true}
  webhook: {enabled: false}
authorization: {mode: AlwaysAllow}
clusterDNS: [$DNS_IP]
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
failSwapOn: false
# A shared test machine: no evictions nor image collection from its disk use.
evictionHard: {memory.available: "1Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
serializeImagePulls: false
EOF
bg kubelet "$BIN/kubelet" --config="$D/kubelet/config.yaml" --kubeconfig="$D/kubeconfig" \
	--root-dir="$D/kubelet/root" --cert-dir="$D/kubelet/pki" \
	--hostname-override="$NODE" --node-ip="$NODE_IP" -v=2
node_ready() { kc get node "$NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' | grep -qx True; }
wait_for 120 node node_ready || {
	logtail kubelet 40
	kc describe node "$NODE" 2>&1 | sed -n '/Conditions:/,/Addresses:/p' | sed 's/^/    | /'
	fail "node $NODE is not Ready"
}
ok

step "8 kube-proxy (iptables)"
cat >"$D/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$D/kubeconfig"}
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE
# Leaves the host's conntrack table size alone.
conntrack: {maxPerCore: 0}
EOF
bg kube-proxy "$BIN/kube-proxy" --config="$D/kube-proxy.yaml"
wait_for 60 kube-proxy curl -sf http://127.0.0.1:10256/healthz || { logtail kube-proxy; fail "kube-proxy is not healthy"; }
ok

step "9 CoreDNS at $DNS_IP"
kc apply -f - >"$D/logs/coredns-apply.log" 2>&1 <<EOF || { logtail coredns-apply; fail "the API server refused CoreDNS's objects"; }
apiVersion: v1
kind: ServiceAccount
metadata: {name: coredns, namespace: kube-system}
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRole
metadata: {name: "system:coredns"}
rules:
- apiGroups: [""]
  resources: [endpoints, services, pods, namespaces]
  verbs: [list, watch]
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list, watch]
---
apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata: {name: "system:coredns"}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: "system:coredns"}
subjects: [{kind: ServiceAccount, name: coredns, namespace: kube-system}]
---
apiVersion: v1
kind: ConfigMap
metadata: {name: coredns, namespace: kube-system}
data:
  Corefile: |
    .:53 {
        errors
        health :8080
        ready :8181
        kubernetes cluster.local in-addr.arpa ip6.arpa {
            pods insecure
            fallthrough in-addr.arpa ip6.arpa
        }
        forward . /etc/resolv.conf
        cache 30
    }
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: coredns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  replicas: 1
  selector: {matchLabels: {k8s-app: kube-dns}}
  template:
    metadata: {labels: {k8s-app: kube-dns}}
    spec:
      serviceAccountName: coredns
      dnsPolicy: Default
      containers:
      - name: coredns
        image: $COREDNS_IMAGE
        imagePullPolicy: Never
        args: [-conf, /etc/coredns/Corefile]
        volumeMounts: [{name: config, mountPath: /etc/coredns}]
        ports:
        - {name: dns, containerPort: 53, protocol: UDP}
        - {name: dns-tcp, containerPort: 53, protocol: TCP}
        readinessProbe: {httpGet: {path: /ready, port: 8181}}
      volumes: [{name: config, configMap: {name: coredns}}]
---
apiVersion: v1
kind: Service
metadata: {name: kube-dns, namespace: kube-system, labels: {k8s-app: kube-dns}}
spec:
  clusterIP: $DNS_IP
  selector: {k8s-app: kube-dns}
  ports:
  - {name: dns, port: 53, protocol: UDP}
  - {name: dns-tcp, port: 53, protocol: TCP}
EOF
kc -n kube-system rollout status deployment/coredns --timeout=120s >"$D/logs/coredns-rollout.log" 2>&1 || {
	kc -n kube-system get pods -o wide 2>&1 | sed 's/^/    | /'
	kc -n kube-system describe pods -l k8s-app=kube-dns 2>&1 | tail -15 | sed 's/^/    | /'
	logtail kubelet 20
	fail "CoreDNS is not ready"
}
ok

step "10 a pod of $PROBE_IMAGE, its Service, reached by IP, cluster IP and name"
kc apply -f - >"$D/logs/probe-apply.log" 2>&1 <<EOF || { logtail probe-apply; fail "the API server refused the probe's objects"; }
apiVersion: v1
kind: Pod
metadata: {name: probe, namespace: default, labels: {app: probe}}
spec:
  terminationGracePeriodSeconds: 1 # python as PID 1 ignores SIGTERM
  containers:
  - name: web
    image: $PROBE_IMAGE
    imagePullPolicy: Never
    command: [python3, -m, http.server, "8000"]
    ports: [{containerPort: 8000}]
    readinessProbe: {tcpSocket: {port: 8000}}
---
apiVersion: v1
kind: Service
metadata: {name: probe, namespace: default}
spec:
  selector: {app: probe}
  ports: [{port: 80, targetPort: 8000}]
EOF
kc wait --for=condition=Ready pod/probe --timeout=120s >/dev/null 2>&1 || {
	kc describe pod probe 2>&1 | tail -15 | sed 's/^/    | /'
	fail "the probe pod is not Ready"
}
POD_IP=$(kc get pod probe -o jsonpath='{.status.podIP}')
SVC_IP=$(kc get service probe -o jsonpath='{.spec.clusterIP}')
curl -sf -o /dev/null "http://$POD_IP:8000/" || fail "the node cannot reach the pod at $POD_IP:8000"
wait_for 30 service curl -sf -o /dev/null "http://$SVC_IP/" || fail "the node cannot reach the Service at $SVC_IP:80"
# From inside the pod, through the cluster's DNS and the Service, as the
# chart's pods reach each other (this goes through the kubelet's exec too).
out=$(kc exec probe -- python3 -c 'import socket,urllib.request; print(socket.gethostbyname("probe.default.svc.cluster.local"), urllib.request.urlopen("http://probe.default.svc.cluster.local/").status)' 2>&1) ||
	fail "from the pod, probe.default.svc.cluster.local: $out"
echo -n "pod $POD_IP, service $SVC_IP, from the pod: $out; "
ok
echo "cluster up: KUBECONFIG=$D/kubeconfig; stop it with $D/down.sh"
