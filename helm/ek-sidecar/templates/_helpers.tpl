{{/*
Names and labels.
*/}}

{{/* The chart name, or nameOverride. */}}
{{- define "ek-sidecar.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* "<release>-<chart>", or fullnameOverride; the release name alone when it already contains the chart name. */}}
{{- define "ek-sidecar.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* "<chart>-<version>" for the helm.sh/chart label. */}}
{{- define "ek-sidecar.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select the pods; never change them on upgrade. */}}
{{- define "ek-sidecar.selectorLabels" -}}
app.kubernetes.io/name: {{ include "ek-sidecar.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/* The standard app.kubernetes.io labels of every object. */}}
{{- define "ek-sidecar.labels" -}}
helm.sh/chart: {{ include "ek-sidecar.chart" . }}
{{ include "ek-sidecar.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
Values derived once.
*/}}

{{/* repository:tag, or repository:tag@digest. */}}
{{- define "ek-sidecar.image" -}}
{{- $tag := .Values.image.tag | default .Chart.AppVersion -}}
{{- if .Values.image.digest -}}
{{- printf "%s:%s@%s" .Values.image.repository $tag .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}
{{- end -}}

{{/* The app image of the example Deployment. */}}
{{- define "ek-sidecar.appImage" -}}
{{- if .Values.app.image.digest -}}
{{- printf "%s:%s@%s" .Values.app.image.repository .Values.app.image.tag .Values.app.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.app.image.repository .Values.app.image.tag -}}
{{- end -}}
{{- end -}}

{{/* Path of the API token file inside the sidecar: the Secret key is projected to the file "token". */}}
{{- define "ek-sidecar.tokenFile" -}}
{{- printf "%s/token" (.Values.paths.tokenDir | trimSuffix "/") -}}
{{- end -}}

{{/* Path of the JWT file, in the sidecar and in the app alike. */}}
{{- define "ek-sidecar.jwtFile" -}}
{{- printf "%s/%s" (.Values.paths.jwtDir | trimSuffix "/") .Values.paths.jwtFileName -}}
{{- end -}}

{{/* The token API URL for the app containers. */}}
{{- define "ek-sidecar.tokenUrl" -}}
{{- printf "http://127.0.0.1:%v/v1/token" .Values.ports.token -}}
{{- end -}}

{{/*
Named templates for embedding ek-sidecar in your own chart.

Add this chart as a dependency (alias ekSidecar), set ekSidecar.deployment.enabled=false and ekSidecar.image.tag, and
pass the sidecar's values with your release and chart:

  {{- $ek := dict "Values" .Values.ekSidecar "Release" .Release "Chart" .Chart }}
  spec:
    template:
      spec:
        initContainers:
          {{- include "ek-sidecar.container" $ek | nindent 10 }}
        containers:
          - name: my-app
            env:
              {{- include "ek-sidecar.appEnv" $ek | nindent 14 }}
            volumeMounts:
              {{- include "ek-sidecar.appVolumeMount" $ek | nindent 14 }}
        volumes:
          {{- include "ek-sidecar.volumes" $ek | nindent 10 }}

Each template renders YAML list items (lines starting with "- "), so they can sit beside your own items.
Kubernetes >= 1.29 is required for native sidecars (init containers with restartPolicy: Always).
*/}}

{{/*
ek-sidecar.container: the sidecar container, as one list item for spec.initContainers. It is a native sidecar: it
starts before the app containers, its startup probe holds them back until the first JWT file is written, and it keeps
running beside them for the life of the pod.
*/}}
{{- define "ek-sidecar.container" -}}
- name: {{ .Values.sidecar.name }}
  image: {{ include "ek-sidecar.image" . | quote }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  restartPolicy: Always
  args: ["run"]
  env:
    - name: EK_TOKEN_FILE
      value: {{ include "ek-sidecar.tokenFile" . | quote }}
    - name: EK_JWT_FILE
      value: {{ include "ek-sidecar.jwtFile" . | quote }}
    - name: EK_LISTEN
      value: {{ printf "127.0.0.1:%v" .Values.ports.token | quote }}
    - name: EK_METRICS_LISTEN
      value: {{ printf "0.0.0.0:%v" .Values.ports.metrics | quote }}
    {{- with .Values.config.apiUrl }}
    - name: EK_API_URL
      value: {{ . | quote }}
    {{- end }}
    {{- with .Values.config.jwtFileMode }}
    - name: EK_JWT_FILE_MODE
      value: {{ . | quote }}
    {{- end }}
    {{- with .Values.config.jwtFormat }}
    - name: EK_JWT_FORMAT
      value: {{ . | quote }}
    {{- end }}
    {{- with .Values.config.refreshWindow }}
    - name: EK_REFRESH_WINDOW
      value: {{ . | quote }}
    {{- end }}
    {{- with .Values.config.minTtl }}
    - name: EK_MIN_TTL
      value: {{ . | quote }}
    {{- end }}
    {{- with .Values.config.rateLimit }}
    - name: EK_RATE_LIMIT
      value: {{ . | quote }}
    {{- end }}
    {{- with .Values.config.timeout }}
    - name: EK_TIMEOUT
      value: {{ . | quote }}
    {{- end }}
    {{- with .Values.config.onRefresh }}
    - name: EK_ON_REFRESH
      value: {{ . | quote }}
    {{- end }}
    {{- with .Values.config.logLevel }}
    - name: EK_LOG_LEVEL
      value: {{ . | quote }}
    {{- end }}
    {{- if .Values.config.deleteOnExit }}
    - name: EK_DELETE_ON_EXIT
      value: "true"
    {{- end }}
    {{- if .Values.config.caBundle.configMapName }}
    - name: EK_CA_FILE
      value: {{ printf "/etc/ek-sidecar/ca/%s" .Values.config.caBundle.key | quote }}
    {{- end }}
    {{- with .Values.sidecar.extraEnv }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  ports:
    - name: metrics
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
  readinessProbe:
    httpGet:
      path: /readyz
      port: {{ .Values.ports.metrics }}
    {{- toYaml .Values.sidecar.readinessProbe | nindent 4 }}
  resources:
    {{- toYaml .Values.sidecar.resources | nindent 4 }}
  securityContext:
    {{- toYaml .Values.sidecar.securityContext | nindent 4 }}
  volumeMounts:
    # Whole-directory mounts, never subPath: the kubelet does not update subPath mounts, so a rotated token
    # would never be seen.
    - name: ek-api-token
      mountPath: {{ .Values.paths.tokenDir }}
      readOnly: true
    - name: ek-jwt
      mountPath: {{ .Values.paths.jwtDir }}
    {{- if .Values.config.caBundle.configMapName }}
    - name: ek-ca
      mountPath: /etc/ek-sidecar/ca
      readOnly: true
    {{- end }}
{{- end -}}

{{/*
ek-sidecar.volumes: the pod volumes the sidecar needs, as list items for spec.volumes: the API token Secret (only
the token key, projected to the file "token") and the shared in-memory JWT directory.
*/}}
{{- define "ek-sidecar.volumes" -}}
- name: ek-api-token
  secret:
    secretName: {{ .Values.apiToken.secretName }}
    defaultMode: 288 # 0440: owner and the pod's fsGroup may read
    items:
      - key: {{ .Values.apiToken.key }}
        path: token
- name: ek-jwt
  emptyDir:
    medium: Memory
    sizeLimit: {{ .Values.jwtVolume.sizeLimit }}
{{- if .Values.config.caBundle.configMapName }}
- name: ek-ca
  configMap:
    name: {{ .Values.config.caBundle.configMapName }}
    items:
      - key: {{ .Values.config.caBundle.key }}
        path: {{ .Values.config.caBundle.key }}
{{- end }}
{{- end -}}

{{/* ek-sidecar.appVolumeMount: the JWT directory, read-only, as a list item for an app container's volumeMounts. */}}
{{- define "ek-sidecar.appVolumeMount" -}}
- name: ek-jwt
  mountPath: {{ .Values.paths.jwtDir }}
  readOnly: true
{{- end -}}

{{/* ek-sidecar.appEnv: EK_JWT_FILE and EK_TOKEN_URL, as list items for an app container's env. */}}
{{- define "ek-sidecar.appEnv" -}}
- name: EK_JWT_FILE
  value: {{ include "ek-sidecar.jwtFile" . | quote }}
- name: EK_TOKEN_URL
  value: {{ include "ek-sidecar.tokenUrl" . | quote }}
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
