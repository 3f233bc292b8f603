// A V1 "simple script": bare band globals and a top-level return (no header).
var ndvi = (B08 - B04) / (B08 + B04);
return [ndvi, ndvi * 0.5, 0];
