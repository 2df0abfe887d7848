// duetime's service worker: shows a reminder's Web Push as a notification with its actions
// (snooze, done) and tells open pages about it.
self.addEventListener("install", () => self.skipWaiting());
self.addEventListener("activate", (event) => event.waitUntil(self.clients.claim()));

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch {
    data = { title: "Reminder", message: event.data ? event.data.text() : "" };
  }
  const actions = (data.actions || []).slice(0, 2).map((a) => ({ action: a.action, title: a.title }));
  event.waitUntil(
    (async () => {
      await self.registration.showNotification(data.title || "Reminder", {
        body: data.message || "",
        tag: data.tag || data.notification_id || undefined,
        data,
        actions,
        requireInteraction: true,
      });
      const pages = await self.clients.matchAll({ type: "window", includeUncontrolled: true });
      for (const page of pages) page.postMessage({ type: "push", data });
    })(),
  );
});

async function act(action) {
  const session = await fetch("/api/auth/session", { credentials: "same-origin" });
  if (!session.ok) return self.clients.openWindow("/signin");
  const { csrf_token } = await session.json();
  const headers = { "x-csrf-token": csrf_token };
  if (action.body) headers["content-type"] = "application/json";
  await fetch(action.path, {
    method: action.method || "POST",
    credentials: "same-origin",
    headers,
    body: action.body ? JSON.stringify(action.body) : undefined,
  });
}

self.addEventListener("notificationclick", (event) => {
  const data = event.notification.data || {};
  event.notification.close();
  const action = (data.actions || []).find((a) => a.action === event.action);
  event.waitUntil(
    (async () => {
      if (action && typeof action.path === "string" && action.path.startsWith("/api/")) return act(action);
      const pages = await self.clients.matchAll({ type: "window" });
      for (const page of pages) if ("focus" in page) return page.focus();
      return self.clients.openWindow("/inbox");
    })(),
  );
});
