// The jobs this browser submitted, newest first, in localStorage:
// {id, prompt, thumb (a small JPEG data URL), status, at (ms), seed?}.

const KEY = "wan22.history";
const MAX = 40;

export function load() {
  try {
    const list = JSON.parse(localStorage.getItem(KEY) || "[]");
    return Array.isArray(list) ? list.filter((e) => e && typeof e.id === "string") : [];
  } catch {
    return [];
  }
}

function save(list) {
  list = list.slice(0, MAX);
  while (list.length > 0) {
    try {
      localStorage.setItem(KEY, JSON.stringify(list));
      return;
    } catch {
      list = list.slice(0, Math.floor(list.length / 2)); // storage full: keep the newest half
    }
  }
  localStorage.removeItem(KEY);
}

export function add(entry) {
  save([entry, ...load().filter((e) => e.id !== entry.id)]);
}

export function update(id, patch) {
  save(load().map((e) => (e.id === id ? { ...e, ...patch } : e)));
}

export function clear() {
  localStorage.removeItem(KEY);
}
