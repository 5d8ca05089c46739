{{/*
Names and labels. Nothing here reads .Chart except the helm.sh/chart label: the named templates are also rendered
with a parent chart's context, whose .Chart is the parent's.
*/}}

{{/* "ek-sidecar", or nameOverride. */}}
{{- define "ek-sidecar.name" -}}
{{- default "ek-sidecar" .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<release>-ek-sidecar", or fullnameOverride; the release name alone when it already contains the name. */}}
{{- define "ek-sidecar.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := include "ek-sidecar.name" . -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<chart>-<version>" for the helm.sh/chart label of the chart's own objects. */}}
{{- define "ek-sidecar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the demo pods; never change them on upgrade. */}}
{{- define "ek-sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ek-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The standard app.kubernetes.io labels of the chart's own objects. */}}
{{- define "ek-sidecar.labels" -}}
helm.sh/chart: {{ include "ek-sidecar.chart" . }}
{{ include "ek-sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* The broker's name, also the name of its Service. */}}
{{- define "ek-sidecar.brokerName" -}}
{{- printf "%s-broker" (include "ek-sidecar.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the broker pods. */}}
{{- define "ek-sidecar.brokerSelectorLabels" -}}
app.kubernetes.io/name: {{ include "ek-sidecar.name" . }}-broker
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The broker's TLS Secret. */}}
{{- define "ek-sidecar.brokerTlsSecret" -}}
{{- .Values.broker.tls.secretName | default (printf "%s-tls" (include "ek-sidecar.brokerName" .)) -}}
{{- end -}}

{{/* The names the broker answers to (its Service, short to fully qualified), comma-separated. */}}
{{- define "ek-sidecar.brokerHosts" -}}
{{- $name := include "ek-sidecar.brokerName" . -}}
{{- $ns := .Release.Namespace -}}
{{- printf "%s,%s.%s,%s.%s.svc,%s.%s.svc.%s" $name $name $ns $name $ns $name $ns .Values.broker.clusterDomain -}}
{{- end -}}

{{/* The URL the chart's sidecars exchange with when the broker is on. */}}
{{- define "ek-sidecar.brokerUrl" -}}
{{- printf "https://%s.%s.svc:%v" (include "ek-sidecar.brokerName" .) .Release.Namespace .Values.ports.token -}}
{{- end -}}

{{/* The ServiceAccount of the demo pods; empty means the namespace's default. */}}
{{- define "ek-sidecar.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "ek-sidecar.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* Metric selector labels: metrics.selector, or the label every pod with the sidecar carries. */}}
{{- define "ek-sidecar.metricsSelector" -}}
{{- if .Values.metrics.selector -}}
{{- toYaml .Values.metrics.selector -}}
{{- else -}}
{{- include "ek-sidecar.podLabels" . -}}
{{- end -}}
{{- end -}}

{{/*
Values derived once.
*/}}

{{/* repository:tag, or repository:tag@digest. */}}
{{- define "ek-sidecar.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository .Values.image.tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository .Values.image.tag -}}
{{- end -}}
{{- end -}}

{{/* Path of the API token file inside the sidecar: the Secret key is projected to the file "token". */}}
{{- define "ek-sidecar.tokenFile" -}}
{{- printf "%s/token" (.Values.paths.tokenDir | trimSuffix "/") -}}
{{- end -}}

{{/* Path of the projected service-account token (mode oidc). */}}
{{- define "ek-sidecar.oidcTokenFile" -}}
{{- printf "%s/%s" (.Values.paths.oidcTokenDir | trimSuffix "/") .Values.paths.oidcTokenFileName -}}
{{- end -}}

{{/* Path of the JWT file, in the sidecar and in the app alike. */}}
{{- define "ek-sidecar.jwtFile" -}}
{{- printf "%s/%s" (.Values.paths.jwtDir | trimSuffix "/") .Values.paths.jwtFileName -}}
{{- end -}}

{{/* The token API URL for the app containers. */}}
{{- define "ek-sidecar.tokenUrl" -}}
{{- printf "http://127.0.0.1:%v/v1/token" .Values.ports.token -}}
{{- end -}}

{{/* Fails the render, with the reason, on values that cannot work together. */}}
{{- define "ek-sidecar.validate" -}}
{{- if and (eq .Values.auth.mode "oidc") (not .Values.auth.oidc.workspace) -}}
{{- fail "ek-sidecar: auth.mode=oidc needs auth.oidc.workspace, the Enkryptify workspace id the sidecar sends with the pod's projected token (--workspace)" -}}
{{- end -}}
{{- if and .Values.broker.enabled (ne .Values.auth.mode "api-token") -}}
{{- fail "ek-sidecar: broker.enabled needs auth.mode=api-token: a sidecar chained to the broker proves itself with the same API token; the broker cannot check another pod's projected service-account token" -}}
{{- end -}}
{{- if and .Values.broker.tls.certManager.enabled (not .Values.broker.tls.certManager.issuerRef.name) -}}
{{- fail "ek-sidecar: broker.tls.certManager.enabled needs broker.tls.certManager.issuerRef.name" -}}
{{- end -}}
{{- end -}}

{{/*
The daemon options of `config` as environment variables, shared by the sidecar and the broker.
*/}}
{{- define "ek-sidecar.optionEnv" -}}
{{- $options := dict
  "EK_JWT_FILE_MODE" .Values.config.jwtFileMode
  "EK_JWT_FORMAT" .Values.config.jwtFormat
  "EK_REFRESH_WINDOW" .Values.config.refreshWindow
  "EK_MIN_TTL" .Values.config.minTtl
  "EK_RATE_LIMIT" .Values.config.rateLimit
  "EK_TIMEOUT" .Values.config.timeout
  "EK_ON_REFRESH" .Values.config.onRefresh
  "EK_PROXY" .Values.config.proxy
  "EK_LOG_LEVEL" .Values.config.logLevel
  "EK_LOG_FORMAT" .Values.config.logFormat
  "EK_METRICS_RUNTIME" .Values.config.metricsRuntime
-}}
{{- range $name := keys $options | sortAlpha }}
{{- with get $options $name }}
- name: {{ $name }}
  value: {{ . | quote }}
{{- end }}
{{- end }}
{{- if .Values.config.deleteOnExit }}
- name: EK_DELETE_ON_EXIT
  value: "true"
{{- end }}
{{- end -}}

{{/*
Named templates for embedding ek-sidecar in your own chart.

Add this chart as a dependency (alias ekSidecar, condition ekSidecar.enabled), and pass its values and your release:

  {{- $ek := dict "Values" .Values.ekSidecar "Release" .Release }}
  spec:
    template:
      metadata:
        labels:
          {{- include "ek-sidecar.podLabels" $ek | nindent 10 }}
      spec:
        initContainers:
          {{- include "ek-sidecar.container" $ek | nindent 10 }}
        containers:
          - name: my-app
            env:
              {{- include "ek-sidecar.appEnv" $ek | nindent 14 }}
            volumeMounts:
              {{- include "ek-sidecar.appVolumeMounts" $ek | nindent 14 }}
        volumes:
          {{- include "ek-sidecar.volumes" $ek | nindent 10 }}

Each template but podLabels renders YAML list items (lines starting with "- "), so they sit beside your own items.
No pod securityContext is needed: the token volume is readable by the sidecar's user whatever the pod's fsGroup, and
the JWT file's mode (config.jwtFileMode, 0644) lets any app user read it. Kubernetes >= 1.29 (native sidecars).
*/}}

{{/* ek-sidecar.podLabels: the label of every pod that runs the sidecar (metrics and the broker's policy select it). */}}
{{- define "ek-sidecar.podLabels" -}}
ek-sidecar/sidecar: "true"
{{- end -}}

{{/*
ek-sidecar.container: the sidecar, as one list item for spec.initContainers. It is a native sidecar: it starts before
the app containers, its startup probe holds them back until the first JWT file is written, and it keeps running
beside them for the life of the pod.
*/}}
{{- define "ek-sidecar.container" -}}
{{- include "ek-sidecar.validate" . -}}
- name: {{ .Values.sidecar.name }}
  image: {{ include "ek-sidecar.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  restartPolicy: Always
  args: ["run"]
  env:
    {{- if eq .Values.auth.mode "oidc" }}
    - name: EK_AUTH
      value: oidc
    - name: EK_OIDC_TOKEN_FILE
      value: {{ include "ek-sidecar.oidcTokenFile" . | quote }}
    - name: EK_WORKSPACE
      value: {{ .Values.auth.oidc.workspace | quote }}
    {{- else }}
    - name: EK_TOKEN_FILE
      value: {{ include "ek-sidecar.tokenFile" . | quote }}
    {{- end }}
    - name: EK_JWT_FILE
      value: {{ include "ek-sidecar.jwtFile" . | quote }}
    - name: EK_LISTEN
      value: {{ printf "127.0.0.1:%v" .Values.ports.token | quote }}
    - name: EK_METRICS_LISTEN
      value: {{ printf "0.0.0.0:%v" .Values.ports.metrics | quote }}
    {{- if .Values.broker.enabled }}
    - name: EK_API_URL
      value: {{ include "ek-sidecar.brokerUrl" . | quote }}
    - name: EK_CA_FILE
      value: /etc/ek-sidecar/broker-ca/ca.crt
    {{- else }}
    {{- with .Values.config.apiUrl }}
    - name: EK_API_URL
      value: {{ . | quote }}
    {{- end }}
    {{- if .Values.config.caBundle.configMapName }}
    - name: EK_CA_FILE
      value: {{ printf "/etc/ek-sidecar/ca/%s" .Values.config.caBundle.key | quote }}
    {{- end }}
    {{- end }}
    {{- with include "ek-sidecar.optionEnv" . | trim }}
    {{- . | nindent 4 }}
    {{- end }}
    {{- with .Values.sidecar.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: ek-metrics
      containerPort: {{ .Values.ports.metrics }}
      protocol: TCP
  startupProbe:
    httpGet:
      path: /readyz
      port: {{ .Values.ports.metrics }}
    {{- toYaml .Values.sidecar.startupProbe | nindent 4 }}
  livenessProbe:
    httpGet:
      path: /healthz
      port: {{ .Values.ports.metrics }}
    {{- toYaml .Values.sidecar.livenessProbe | nindent 4 }}
  {{- if .Values.sidecar.readinessProbe.enabled }}
  readinessProbe:
    httpGet:
      path: /readyz
      port: {{ .Values.ports.metrics }}
    {{- omit .Values.sidecar.readinessProbe "enabled" | toYaml | nindent 4 }}
  {{- end }}
  resources:
    {{- toYaml .Values.sidecar.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.sidecar.securityContext | nindent 4 }}
  volumeMounts:
    # Whole-directory mounts, never subPath: the kubelet does not update subPath mounts, so a rotated token
    # would never be seen.
    {{- if eq .Values.auth.mode "oidc" }}
    - name: ek-oidc-token
      mountPath: {{ .Values.paths.oidcTokenDir }}
      readOnly: true
    {{- else }}
    - name: ek-api-token
      mountPath: {{ .Values.paths.tokenDir }}
      readOnly: true
    {{- end }}
    - name: ek-jwt
      mountPath: {{ .Values.paths.jwtDir }}
    {{- if .Values.broker.enabled }}
    - name: ek-broker-ca
      mountPath: /etc/ek-sidecar/broker-ca
      readOnly: true
    {{- else if .Values.config.caBundle.configMapName }}
    - name: ek-ca
      mountPath: /etc/ek-sidecar/ca
      readOnly: true
    {{- end }}
{{- end -}}

{{/*
ek-sidecar.volumes: the pod volumes the sidecar needs, as list items for spec.volumes: its credential (the API token
Secret's key alone, or a projected service-account token), the shared in-memory JWT directory, and a CA when needed.
*/}}
{{- define "ek-sidecar.volumes" -}}
{{- if eq .Values.auth.mode "oidc" -}}
- name: ek-oidc-token
  projected:
    sources:
      - serviceAccountToken:
          audience: {{ .Values.auth.oidc.audience | quote }}
          expirationSeconds: {{ .Values.auth.oidc.expirationSeconds }}
          path: {{ .Values.paths.oidcTokenFileName }}
{{- else -}}
- name: ek-api-token
  secret:
    secretName: {{ .Values.auth.apiToken.secretName }}
    # 0444: readable by the sidecar's user whatever the pod's fsGroup; no other container mounts this volume.
    defaultMode: 292
    items:
      - key: {{ .Values.auth.apiToken.key }}
        path: token
{{- end }}
- name: ek-jwt
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.jwtVolume.sizeLimit }}
{{- if .Values.broker.enabled }}
- name: ek-broker-ca
  {{- if .Values.broker.ca.configMapName }}
  configMap:
    name: {{ .Values.broker.ca.configMapName }}
    items:
      - key: {{ .Values.broker.ca.key }}
        path: ca.crt
  {{- else }}
  # Only the CA of the broker's TLS Secret: its private key never reaches the clients.
  secret:
    secretName: {{ include "ek-sidecar.brokerTlsSecret" . }}
    items:
      - key: ca.crt
        path: ca.crt
  {{- end }}
{{- else if .Values.config.caBundle.configMapName }}
- name: ek-ca
  configMap:
    name: {{ .Values.config.caBundle.configMapName }}
    items:
      - key: {{ .Values.config.caBundle.key }}
        path: {{ .Values.config.caBundle.key }}
{{- end }}
{{- end -}}

{{/* ek-sidecar.appVolumeMounts: for an app container's volumeMounts: the JWT directory (and the projected token with
auth.oidc.mountInApp), read-only. */}}
{{- define "ek-sidecar.appVolumeMounts" -}}
- name: ek-jwt
  mountPath: {{ .Values.paths.jwtDir }}
  readOnly: true
{{- if and (eq .Values.auth.mode "oidc") .Values.auth.oidc.mountInApp }}
- name: ek-oidc-token
  mountPath: {{ .Values.paths.oidcTokenDir }}
  readOnly: true
{{- end }}
{{- end -}}

{{/* ek-sidecar.appVolumeMount: the former name of ek-sidecar.appVolumeMounts. */}}
{{- define "ek-sidecar.appVolumeMount" -}}
{{- include "ek-sidecar.appVolumeMounts" . -}}
{{- end -}}

{{/* ek-sidecar.appEnv: EK_JWT_FILE and EK_TOKEN_URL (and ENKRYPTIFY_TOKEN_PATH with auth.oidc.mountInApp), as list
items for an app container's env. */}}
{{- define "ek-sidecar.appEnv" -}}
- name: EK_JWT_FILE
  value: {{ include "ek-sidecar.jwtFile" . | quote }}
- name: EK_TOKEN_URL
  value: {{ include "ek-sidecar.tokenUrl" . | quote }}
{{- if and (eq .Values.auth.mode "oidc") .Values.auth.oidc.mountInApp }}
- name: ENKRYPTIFY_TOKEN_PATH
  value: {{ include "ek-sidecar.oidcTokenFile" . | quote }}
{{- end }}
{{- end -}}

{{/*
The demo reader of the example app container (busybox sh): logs the JWT's expiry and whether the token API answers,
once a minute. It never prints the token.
*/}}
{{- define "ek-sidecar.demoScript" -}}
while true; do
  if [ -s "$EK_JWT_FILE" ]; then
    payload=$(cut -d. -f2 "$EK_JWT_FILE" | tr '_-' '/+')
    while [ $(( ${#payload} % 4 )) -ne 0 ]; do payload="$payload="; done
    exp=$(echo "$payload" | base64 -d 2>/dev/null | sed -n 's/.*"exp":[[:space:]]*\([0-9]*\).*/\1/p')
    if [ -n "$exp" ]; then
      echo "JWT file present, expires at $(date -u -d "@$exp" +%Y-%m-%dT%H:%M:%SZ)"
    else
      echo "JWT file present, no readable exp claim"
    fi
  else
    echo "JWT file $EK_JWT_FILE not there yet"
  fi
  if wget -q -T 5 --header 'Ek-Sidecar-Request: true' -O /dev/null "$EK_TOKEN_URL"; then
    echo "token API answered 200"
  else
    echo "token API did not answer 200"
  fi
  sleep 60
done
{{- end -}}
