/* avk_decimal: see decimal.h. */
#include "common/util/decimal.h"

size_t avk_decimal(char *buf, uint64_t v)
{
        char digits[AVK_DECIMAL_SIZE - 1];
        size_t n = 0, len = 0;
        do
                digits[n++] = (char)('0' + v % 10);
        while ((v /= 10) > 0);
        while (n > 0)
                buf[len++] = digits[--n];
        buf[len] = '\0';
        return len;
}
