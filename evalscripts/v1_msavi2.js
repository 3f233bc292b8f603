// MSAVI2
let a = 2 * B08 + 1;
let msavi = (a - Math.sqrt(a ** 2 - 8 * (B08 - B04))) / 2;
return [msavi];
