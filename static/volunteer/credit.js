// Credit as the volunteer page shows it: to the micro-credit, like every page of the site
// (volunteers/templatetags/credit_format.py): "1,234.500000", "0.000031". Six decimals
// always, so real work never shows as 0 and the counter keeps its width between updates.
const MICRO = 1_000_000;

// The exact micro-credits of a `stats` frame or `welcome.volunteer`: `credit_micro` when
// the server sends it, else the `credit` number (older servers rounded it).
export function creditMicroOf(message) {
  if (!message) return null;
  if (Number.isSafeInteger(message.credit_micro)) return message.credit_micro;
  if (message.credit === undefined || message.credit === null) return null;
  const credit = Number(message.credit);
  return Number.isFinite(credit) ? Math.round(credit * MICRO) : null;
}

export function formatCreditMicro(micro) {
  const value = Math.round(Number(micro) || 0);
  const sign = value < 0 ? "-" : "";
  const magnitude = Math.abs(value);
  const whole = Math.floor(magnitude / MICRO);
  const fraction = String(magnitude % MICRO).padStart(6, "0");
  return `${sign}${whole.toLocaleString("en-US")}.${fraction}`;
}
