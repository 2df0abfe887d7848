// Settings: time zone (detected, confirmed by saving), quiet hours, channels, browser push
// devices and the password.
import {
  api,
  browserZone,
  busy,
  clearErrors,
  el,
  errorMessages,
  profile,
  showErrors,
  startPage,
  timeZones,
  toast,
} from "./common.js";

const zoneForm = document.getElementById("zone-form");
const channelsForm = document.getElementById("channels-form");
const passwordForm = document.getElementById("password-form");
const pushStatus = document.getElementById("push-status");
let channels = null;

async function loadProfile() {
  const me = await profile(true);
  zoneForm.elements.timezone.value = me.timezone || "";
  zoneForm.elements["quiet_hours.start"].value = me.quiet_hours ? me.quiet_hours.start : "";
  zoneForm.elements["quiet_hours.end"].value = me.quiet_hours ? me.quiet_hours.end : "";
  const detected = browserZone();
  const hint = document.getElementById("zone-detected");
  if (me.timezone !== detected) {
    hint.textContent = me.timezone
      ? `This browser is in ${detected}; your reminders use ${me.timezone}.`
      : `No time zone saved yet. This browser is in ${detected}: use it and save to confirm.`;
    hint.hidden = false;
  } else {
    hint.hidden = true;
  }
}

document.getElementById("detect").addEventListener("click", () => {
  zoneForm.elements.timezone.value = browserZone();
  zoneForm.elements.timezone.focus();
});

zoneForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(zoneForm);
  const zone = zoneForm.elements.timezone.value.trim();
  const start = zoneForm.elements["quiet_hours.start"].value;
  const end = zoneForm.elements["quiet_hours.end"].value;
  const problems = {};
  if (zone && zone !== "UTC" && !timeZones().includes(zone)) {
    problems.timezone = `“${zone}” is not a time zone name like Europe/Paris.`;
  }
  if (Boolean(start) !== Boolean(end)) problems.quiet_hours = "Give both the start and the end of quiet hours, or neither.";
  else if (start && start === end) problems.quiet_hours = "Quiet hours must start and end at different times.";
  if (Object.keys(problems).length) return showErrors(zoneForm, problems);
  await busy(zoneForm, async () => {
    try {
      await api("PUT", "/api/me", {
        timezone: zone || null,
        quiet_hours: start ? { start: start.slice(0, 5), end: end.slice(0, 5) } : null,
      });
      try {
        localStorage.removeItem("duetime:zone"); // the task list's remembered zone (app.js)
      } catch {
        // nothing remembered
      }
      await loadProfile();
      toast("Time settings saved");
    } catch (e) {
      showErrors(zoneForm, errorMessages(e, ["timezone", "quiet_hours"]));
    }
  });
});

function fillChannels(c) {
  channels = c;
  channelsForm.elements["webhook.enabled"].checked = c.webhook.enabled;
  channelsForm.elements["webhook.url"].value = c.webhook.url || "";
  document.getElementById("webhook-secret").textContent = c.webhook.secret;
  channelsForm.elements["email.enabled"].checked = c.email.enabled;
  channelsForm.elements["email.address"].value = c.email.address || "";
  document.getElementById("email-unavailable").hidden = c.email.available;
  channelsForm.elements["push.enabled"].checked = c.push.enabled;
}

function channelBody() {
  const f = channelsForm.elements;
  return {
    webhook: { url: f["webhook.url"].value.trim() || null, enabled: f["webhook.enabled"].checked },
    email: { address: f["email.address"].value.trim() || null, enabled: f["email.enabled"].checked },
    push: { enabled: f["push.enabled"].checked },
  };
}

channelsForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(channelsForm);
  const body = channelBody();
  const problems = {};
  if (body.webhook.enabled && !body.webhook.url) problems.webhook = "Give the URL the webhook is sent to.";
  if (body.email.enabled && !body.email.address) problems.email = "Give the address to email.";
  if (Object.keys(problems).length) return showErrors(channelsForm, problems);
  await busy(channelsForm, async () => {
    try {
      fillChannels(await api("PUT", "/api/me/channels", body));
      toast("Channels saved");
    } catch (e) {
      showErrors(channelsForm, errorMessages(e, ["webhook", "email", "push"]));
    }
  });
});

document.getElementById("rotate-secret").addEventListener("click", async () => {
  try {
    fillChannels(await api("POST", "/api/me/channels/webhook/secret"));
    toast("New signing secret made; webhooks from now on use it");
  } catch (e) {
    toast(e.message);
  }
});

// -- browser push ---------------------------------------------------------------------------

function keyBytes(base64url) {
  const text = atob(base64url.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((base64url.length + 3) % 4));
  return Uint8Array.from(text, (c) => c.charCodeAt(0));
}

async function loadDevices() {
  const list = document.getElementById("devices");
  try {
    const found = await api("GET", "/api/push/subscriptions");
    list.replaceChildren(
      ...found.subscriptions.map((s) =>
        el(
          "li",
          { "data-device": s.id },
          el("span", { text: s.label || new URL(s.endpoint).host }),
          " ",
          el("span", { class: "hint", text: s.last_error ? `last error: ${s.last_error}` : "" }),
          el("button", {
            type: "button",
            class: "link",
            text: "Remove",
            "aria-label": `Remove ${s.label || "device"}`,
            onclick: async () => {
              await api("DELETE", `/api/push/subscriptions/${encodeURIComponent(s.id)}`).catch((e) => toast(e.message));
              loadDevices();
            },
          }),
        ),
      ),
    );
    if (!found.subscriptions.length) list.append(el("li", { class: "hint", text: "No device gets pushes yet." }));
  } catch (e) {
    list.replaceChildren(el("li", { text: e.message }));
  }
}

/** Register a subscription (PushSubscription.toJSON()) and turn the push channel on. */
export async function saveSubscription(json, label) {
  await api("POST", "/api/push/subscriptions", { ...json, label });
  if (!channels.push.enabled) {
    channelsForm.elements["push.enabled"].checked = true;
    fillChannels(await api("PUT", "/api/me/channels", { ...channelBody(), push: { enabled: true } }));
  }
  await loadDevices();
}

document.getElementById("push-subscribe").addEventListener("click", async () => {
  pushStatus.textContent = "Asking this browser…";
  try {
    if (!("serviceWorker" in navigator) || !("PushManager" in window)) throw new Error("This browser cannot receive pushes.");
    const registration = await navigator.serviceWorker.register("/sw.js", { scope: "/" });
    await navigator.serviceWorker.ready;
    const permission = await Notification.requestPermission();
    if (permission !== "granted") throw new Error("Notifications are blocked for this site; allow them in the browser's site settings.");
    const { public_key } = await api("GET", "/api/push/key");
    const subscription = await registration.pushManager.subscribe({
      userVisibleOnly: true,
      applicationServerKey: keyBytes(public_key),
    });
    await saveSubscription(subscription.toJSON(), navigator.userAgentData?.platform || "This browser");
    pushStatus.textContent = "This browser gets your reminders.";
  } catch (e) {
    pushStatus.textContent = `Could not subscribe: ${e.message}`;
  }
});

document.getElementById("notify-permission").addEventListener("click", async () => {
  const result = await Notification.requestPermission();
  pushStatus.textContent = result === "granted" ? "Reminders also show as system notifications." : "Notifications are not allowed.";
});

// -- password -------------------------------------------------------------------------------

passwordForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  clearErrors(passwordForm);
  const current = passwordForm.elements.current_password.value;
  const next = passwordForm.elements.new_password.value;
  const problems = {};
  if (!current) problems.current_password = "Enter your current password.";
  if (!next) problems.new_password = "Enter a new password.";
  if (Object.keys(problems).length) return showErrors(passwordForm, problems);
  await busy(passwordForm, async () => {
    try {
      const done = await api("POST", "/api/auth/password", { current_password: current, new_password: next });
      passwordForm.reset();
      toast(done.ended_sessions ? `Password changed; ${done.ended_sessions} other session(s) signed out` : "Password changed");
    } catch (e) {
      showErrors(passwordForm, errorMessages(e, ["current_password", "new_password"]));
    }
  });
});

(async () => {
  await startPage();
  document.getElementById("zones").replaceChildren(...timeZones().map((z) => el("option", { value: z })));
  await Promise.all([loadProfile(), api("GET", "/api/me/channels").then(fillChannels), loadDevices()]);
  document.body.dataset.settingsReady = "1";
})();
