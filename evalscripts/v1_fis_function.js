// V1 body declaring its own index() (harmless: the body runs in a function scope).
function index(x, y) {
  return (x - y) / (x + y) * 10;
}
var v = index(B08, B04);
if (v > 5) return [1];
return [v / 10];
