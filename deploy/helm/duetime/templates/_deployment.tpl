{{/* One duetime Deployment with its Dapr sidecar: (dict "root" $ "role" "api"|"worker").
Both roles run the same image and environment; they differ in command, DUETIME_ROLE, app-id,
replicas and scheduling values. */}}
{{- define "duetime.deployment" -}}
{{- $root := .root -}}
{{- $role := .role -}}
{{- $v := index $root.Values $role -}}
{{- $args := dict "root" $root "role" $role -}}
{{- include "duetime.checkDatabase" $root -}}
{{- include "duetime.checkPubsub" $root -}}
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ include "duetime.fullname" $root }}-{{ $role }}
  labels:
    {{- include "duetime.roleLabels" $args | nindent 4 }}
spec:
  replicas: {{ $v.replicas }}
  selector:
    matchLabels:
      {{- include "duetime.roleSelectorLabels" $args | nindent 6 }}
  template:
    metadata:
      labels:
        {{- include "duetime.roleLabels" $args | nindent 8 }}
        {{- with $v.podLabels }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      annotations:
        {{- with $v.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        {{- with $root.Values.dapr.extraAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
        dapr.io/enabled: "true"
        dapr.io/app-id: {{ include "duetime.appId" $args | quote }}
        dapr.io/app-port: "8000"
        dapr.io/config: {{ include "duetime.configurationName" $root | quote }}
        dapr.io/api-token-secret: {{ include "duetime.daprApiTokenSecretName" $root | quote }}
        dapr.io/app-token-secret: {{ include "duetime.appApiTokenSecretName" $root | quote }}
        {{- /* Not on a Kafka subscriber: daprd 1.16's Kafka subscription can stay closed once
        the app was unhealthy (seen in duetime's tests; dapr/components-contrib#4349); the
        Resiliency retries carry it over a worker restart instead. */}}
        {{- if or (eq $role "api") (ne $root.Values.pubsub.type "kafka") }}
        dapr.io/enable-app-health-check: "true"
        dapr.io/app-health-check-path: /healthz
        {{- end }}
        dapr.io/log-level: {{ $root.Values.dapr.logLevel | quote }}
    spec:
      serviceAccountName: {{ include "duetime.serviceAccountName" $root }}
      automountServiceAccountToken: {{ $root.Values.serviceAccount.automountToken }}
      {{- with $root.Values.imagePullSecrets }}
      imagePullSecrets:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      securityContext:
        {{- toYaml $root.Values.podSecurityContext | nindent 8 }}
      containers:
        - name: duetime
          image: {{ include "duetime.image" $root | quote }}
          imagePullPolicy: {{ $root.Values.image.pullPolicy }}
          command:
            {{- toYaml $v.command | nindent 12 }}
          ports:
            - name: http
              containerPort: 8000
              protocol: TCP
          env:
            - name: DUETIME_ROLE
              value: {{ $role }}
            {{- include "duetime.env" $root | nindent 12 }}
          startupProbe:
            httpGet:
              path: /healthz
              port: http
            {{- toYaml $root.Values.probes.startup | nindent 12 }}
          livenessProbe:
            httpGet:
              path: /healthz
              port: http
            {{- toYaml $root.Values.probes.liveness | nindent 12 }}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            {{- toYaml $root.Values.probes.readiness | nindent 12 }}
          resources:
            {{- toYaml $v.resources | nindent 12 }}
          securityContext:
            {{- toYaml $root.Values.securityContext | nindent 12 }}
          volumeMounts:
            - name: data
              mountPath: /data
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: data
          emptyDir: {}
        - name: tmp
          emptyDir: {}
      {{- with $v.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.tolerations }}
      tolerations:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.affinity }}
      affinity:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with $v.topologySpreadConstraints }}
      topologySpreadConstraints:
        {{- toYaml . | nindent 8 }}
      {{- end }}
{{- end -}}

{{/* The environment both containers share (DUETIME_ROLE aside). */}}
{{- define "duetime.env" -}}
- name: DUETIME_HOST
  value: "0.0.0.0"
- name: DUETIME_PORT
  value: "8000"
- name: DUETIME_DATA_DIR
  value: /data
- name: DUETIME_LOG_LEVEL
  value: {{ .Values.env.logLevel | quote }}
- name: DUETIME_SCHEDULER
  value: dapr
- name: DUETIME_EVENT_PUBLISHER
  value: dapr
- name: DUETIME_PUBSUB_NAME
  value: {{ .Values.pubsub.name | quote }}
- name: DUETIME_DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ include "duetime.databaseSecretName" . }}
      key: {{ include "duetime.databaseSecretKey" . }}
- name: DUETIME_JWT_SECRET
  valueFrom:
    secretKeyRef:
      name: {{ include "duetime.secretName" . }}
      key: jwt-secret
- name: DUETIME_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "duetime.secretName" . }}
      key: api-token
{{- /* The injector gives these two only to the daprd container; the app needs them too. */}}
- name: DAPR_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "duetime.daprApiTokenSecretName" . }}
      key: token
- name: DUETIME_APP_API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ include "duetime.appApiTokenSecretName" . }}
      key: token
- name: DUETIME_WEBHOOK_ALLOW_PRIVATE
  value: {{ .Values.env.webhookAllowPrivate | toString | quote }}
{{- with .Values.smtp }}
{{- if .host }}
- name: DUETIME_SMTP_HOST
  value: {{ .host | quote }}
- name: DUETIME_SMTP_PORT
  value: {{ .port | toString | quote }}
- name: DUETIME_SMTP_SECURITY
  value: {{ .security | quote }}
- name: DUETIME_SMTP_FROM
  value: {{ .from | quote }}
{{- if .username }}
- name: DUETIME_SMTP_USERNAME
  value: {{ .username | quote }}
{{- end }}
{{- if .passwordSecret.name }}
- name: DUETIME_SMTP_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .passwordSecret.name }}
      key: {{ .passwordSecret.key }}
{{- end }}
{{- end }}
{{- end }}
{{- /* extraEnv, each `value` as a string (`--set extraEnv[0].value=90` gives a number). */}}
{{- range .Values.extraEnv }}
{{- $e := deepCopy . }}
{{- if hasKey $e "value" }}
{{- $_ := set $e "value" (toString $e.value) }}
{{- end }}
{{ list $e | toYaml }}
{{- end }}
{{- end -}}
