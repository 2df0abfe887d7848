{{/* Names ------------------------------------------------------------------------------ */}}

{{- define "duetime.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 48 | trimSuffix "-" -}}
{{- end -}}

{{/* `<release>-duetime`, or the release name if it already contains the chart name; cut to 48
characters so that `-api`, `-worker`, `-dapr-api-token`, ... fit in 63. */}}
{{- define "duetime.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 48 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 48 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 48 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "duetime.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Dapr app-id of a role: (dict "root" $ "role" "api"|"worker") */}}
{{- define "duetime.appId" -}}
{{- $values := index .root.Values .role -}}
{{- default (printf "%s-%s" (include "duetime.fullname" .root) .role) $values.appId -}}
{{- end -}}

{{- define "duetime.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "duetime.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "duetime.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "duetime.configurationName" -}}
{{- default (include "duetime.fullname" .) .Values.dapr.configuration.name -}}
{{- end -}}

{{/* Labels ----------------------------------------------------------------------------- */}}

{{- define "duetime.selectorLabels" -}}
app.kubernetes.io/name: {{ include "duetime.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "duetime.labels" -}}
helm.sh/chart: {{ include "duetime.chart" . }}
{{ include "duetime.selectorLabels" . }}
app.kubernetes.io/version: {{ default .Chart.AppVersion .Values.image.tag | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: duetime
{{- end -}}

{{/* Labels of one role's objects, and the selector that picks only that role's pods:
(dict "root" $ "role" "api"|"worker") */}}
{{- define "duetime.roleSelectorLabels" -}}
{{ include "duetime.selectorLabels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{- define "duetime.roleLabels" -}}
{{ include "duetime.labels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end -}}

{{/* Secrets ---------------------------------------------------------------------------- */}}

{{- define "duetime.databaseSecretName" -}}
{{- if .Values.postgresql.existingSecret -}}
{{- .Values.postgresql.existingSecret -}}
{{- else -}}
{{- printf "%s-database" (include "duetime.fullname" .) -}}
{{- end -}}
{{- end -}}

{{- define "duetime.databaseSecretKey" -}}
{{- if .Values.postgresql.existingSecret -}}
{{- .Values.postgresql.existingSecretKey -}}
{{- else -}}
database-url
{{- end -}}
{{- end -}}

{{/* Fails the render unless exactly one source of the database URL is given. */}}
{{- define "duetime.checkDatabase" -}}
{{- if and .Values.postgresql.url .Values.postgresql.existingSecret -}}
{{- fail "set only one of postgresql.url and postgresql.existingSecret" -}}
{{- end -}}
{{- if not (or .Values.postgresql.url .Values.postgresql.existingSecret) -}}
{{- fail "duetime needs PostgreSQL: set postgresql.url (e.g. --set postgresql.url=postgresql://duetime:PASSWORD@postgres:5432/duetime) or postgresql.existingSecret (a Secret with the URL under postgresql.existingSecretKey)" -}}
{{- end -}}
{{- end -}}

{{- define "duetime.secretName" -}}
{{- default (include "duetime.fullname" .) .Values.secrets.existingSecret -}}
{{- end -}}

{{- define "duetime.daprApiTokenSecretName" -}}
{{- default (printf "%s-dapr-api-token" (include "duetime.fullname" .)) .Values.dapr.apiToken.existingSecret -}}
{{- end -}}

{{- define "duetime.appApiTokenSecretName" -}}
{{- default (printf "%s-app-api-token" (include "duetime.fullname" .)) .Values.dapr.appToken.existingSecret -}}
{{- end -}}

{{/* The data of one Secret the chart owns: (dict "root" $ "name" NAME "entries" (list (list KEY GIVEN) ...)).
A value GIVEN in values.yaml goes in `stringData` as it is (so that rendered manifests show
placeholders one can edit). A key given no value keeps the value already in the cluster
(`lookup`, so that `helm upgrade` does not rotate it), else gets 48 random letters and digits;
those go in `data`. */}}
{{- define "duetime.secretBody" -}}
{{- $existing := lookup "v1" "Secret" .root.Release.Namespace .name -}}
{{- $current := dig "data" (dict) $existing -}}
{{- $data := dict -}}
{{- $string := dict -}}
{{- range .entries -}}
{{- $key := index . 0 -}}
{{- $given := index . 1 | default "" | toString -}}
{{- if $given -}}
{{- $_ := set $string $key $given -}}
{{- else if hasKey $current $key -}}
{{- $_ := set $data $key (index $current $key) -}}
{{- else -}}
{{- $_ := set $data $key (randAlphaNum 48 | b64enc) -}}
{{- end -}}
{{- end -}}
type: Opaque
{{- with $data }}
data:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $string }}
stringData:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Pub/sub ---------------------------------------------------------------------------- */}}

{{- define "duetime.checkPubsub" -}}
{{- if not (has .Values.pubsub.type (list "redis" "kafka")) -}}
{{- fail (printf "pubsub.type must be redis or kafka, not %q" .Values.pubsub.type) -}}
{{- end -}}
{{- end -}}
